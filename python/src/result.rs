//! What every mode returns for a frame: the class map, the prior's confidence per grid cell,
//! the stage times, and for streams where the frame came from and what was dropped.

use std::time::Duration;

use gss::pipeline::MaskFrame;
use gss::StageTimings;
use numpy::ndarray::{Array2, Array3};
use numpy::{PyArray2, PyArray3, PyUntypedArrayMethods};
use pyo3::exceptions::PyValueError;
use pyo3::prelude::*;

/// Time each stage took on one frame, in milliseconds.
#[pyclass(module = "gss", frozen, get_all)]
#[derive(Debug, Clone, Copy)]
pub struct Timings {
    pub preprocess_ms: f64,
    /// With a backend that runs both graphs in one submission (wgpu, or a sequential stream),
    /// both graphs, and `decoder_ms` is 0.
    pub prior_ms: f64,
    pub decoder_ms: f64,
    pub inverse_ms: f64,
    /// Mapping the class map back to the frame's size.
    pub resize_ms: f64,
    /// The five together: the frame time `gss bench` reports.
    pub total_ms: f64,
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1e3
}

impl From<StageTimings> for Timings {
    fn from(t: StageTimings) -> Self {
        Self {
            preprocess_ms: ms(t.preprocess),
            prior_ms: ms(t.prior),
            decoder_ms: ms(t.decoder),
            inverse_ms: ms(t.inverse),
            resize_ms: ms(t.resize),
            total_ms: ms(t.total()),
        }
    }
}

#[pymethods]
impl Timings {
    fn __repr__(&self) -> String {
        format!(
            "Timings(preprocess_ms={:.2}, prior_ms={:.2}, decoder_ms={:.2}, inverse_ms={:.2}, \
             resize_ms={:.2}, total_ms={:.2})",
            self.preprocess_ms,
            self.prior_ms,
            self.decoder_ms,
            self.inverse_ms,
            self.resize_ms,
            self.total_ms
        )
    }
}

/// One segmented frame.
#[pyclass(module = "gss", frozen, get_all)]
pub struct SegmentResult {
    /// H×W uint8 class ids at the frame's size; 255 (`gss.UNSEEN`) where the fit cut the frame.
    pub classes: Py<PyArray2<u8>>,
    /// The prior's probability of its chosen token per grid cell (grid h×w float32), or None
    /// when the package's prior gives no token logits (or confidence was turned off).
    pub confidence: Option<Py<PyArray2<f32>>>,
    pub timings: Timings,
    /// Live mode: the timestamp the frame was pushed with.
    pub timestamp_ns: Option<u64>,
    /// Stream mode: the frame's position in its source (every file counts, unreadable ones too).
    pub index: Option<u64>,
    /// Stream mode: the file the frame came from.
    pub path: Option<String>,
    /// Live and stream modes: from the frame entering gss to its result being handed over.
    pub latency_ms: Option<f64>,
    /// Live and stream modes: frames the stream's stages had dropped when this one came out.
    pub dropped: Option<u64>,
    /// Stream mode with `frames=True`: the frame itself (H×W×3 uint8 RGB), for overlays.
    pub frame: Option<Py<PyArray3<u8>>>,
}

#[pymethods]
impl SegmentResult {
    fn __repr__(&self, py: Python<'_>) -> String {
        let shape = self.classes.bind(py).shape().to_vec();
        let mut s = format!("SegmentResult(classes={}x{}", shape[0], shape[1]);
        if let Some(t) = self.timestamp_ns {
            s.push_str(&format!(", timestamp_ns={t}"));
        }
        if let Some(p) = &self.path {
            s.push_str(&format!(", path={p:?}"));
        }
        s.push_str(&format!(
            ", confidence={}, total_ms={:.2})",
            if self.confidence.is_some() {
                "grid"
            } else {
                "None"
            },
            self.timings.total_ms
        ));
        s
    }
}

/// The confidence grid as an h×w array that takes over `values`.
pub fn confidence_to_py(
    py: Python<'_>,
    values: Vec<f32>,
    grid: [usize; 2],
) -> PyResult<Py<PyArray2<f32>>> {
    let array = Array2::from_shape_vec((grid[0], grid[1]), values)
        .map_err(|e| PyValueError::new_err(format!("confidence grid: {e}")))?;
    Ok(PyArray2::from_owned_array(py, array).unbind())
}

/// A pipeline's frame as a result; `timestamp` is the live mode's label (the source index).
pub fn from_mask(
    py: Python<'_>,
    mask: &MaskFrame,
    grid: [usize; 2],
    live: bool,
) -> PyResult<SegmentResult> {
    // The class map belongs to the pipeline's pool: the array gets its own copy.
    let classes = crate::frame::classes_to_py(py, (*mask.classes).clone())?;
    let frame = match &mask.frame {
        Some(image) => {
            let (w, h) = image.dimensions();
            let array = Array3::from_shape_vec((h as usize, w as usize, 3), image.as_raw().clone())
                .map_err(|e| PyValueError::new_err(format!("frame: {e}")))?;
            Some(PyArray3::from_owned_array(py, array).unbind())
        }
        None => None,
    };
    let confidence = mask
        .confidence
        .as_ref()
        .map(|c| confidence_to_py(py, c.to_vec(), grid))
        .transpose()?;
    Ok(SegmentResult {
        classes,
        confidence,
        timings: mask.timings.into(),
        timestamp_ns: live.then_some(mask.source_index),
        index: (!live).then_some(mask.source_index),
        path: mask.origin.as_ref().map(|p| p.display().to_string()),
        latency_ms: Some(ms(mask.latency)),
        dropped: Some(mask.dropped_so_far),
        frame,
    })
}
