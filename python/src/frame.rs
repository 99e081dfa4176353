//! Frames between numpy and the library. A frame is an H×W×3 uint8 array read in place: the
//! array is checked (dtype, shape, layout: each error names what was expected and how to get
//! it), borrowed read-only for the call, and handed to the library as an [`ImageView`], so no
//! copy is made. Class maps go back as H×W uint8 arrays that own the library's buffer.

use gss::frame_path::{ChannelOrder, ImageView};
use image::{GrayImage, RgbImage};
use numpy::ndarray::{Array2, Array3};
use numpy::{
    PyArray2, PyArray3, PyArrayDescrMethods, PyArrayMethods, PyReadonlyArray3, PyUntypedArray,
    PyUntypedArrayMethods,
};
use pyo3::exceptions::{PyTypeError, PyValueError};
use pyo3::prelude::*;

use crate::errors::IntoPy;

/// Where a checked frame's pixels are, as plain numbers: it crosses into code that runs
/// without the GIL, while the [`PyReadonlyArray3`] it came from stays borrowed on the caller's
/// side.
#[derive(Debug, Clone, Copy)]
pub struct RawFrame {
    ptr: usize,
    len: usize,
    pub width: u32,
    pub height: u32,
    row_stride: usize,
}

impl RawFrame {
    /// The pixels as a view.
    ///
    /// # Safety
    /// The array this frame was borrowed from ([`borrow_frame`]'s guard) must be alive and
    /// borrowed for as long as the view is used.
    pub unsafe fn view(&self, order: ChannelOrder) -> gss::Result<ImageView<'_>> {
        // SAFETY: `borrow_frame` checked that ptr..ptr+len lies inside the array's data, and the
        // caller keeps the array borrowed (numpy's borrow flags refuse writers from Rust).
        let data = unsafe { std::slice::from_raw_parts(self.ptr as *const u8, self.len) };
        ImageView::new(data, self.width, self.height, self.row_stride, order)
    }
}

fn type_name(obj: &Bound<'_, PyAny>) -> String {
    obj.get_type()
        .name()
        .map(|n| n.to_string())
        .unwrap_or_else(|_| "object".into())
}

/// Checks `frame` and borrows it read-only. The guard must outlive every use of the
/// [`RawFrame`].
pub fn borrow_frame<'py>(
    frame: &Bound<'py, PyAny>,
) -> PyResult<(PyReadonlyArray3<'py, u8>, RawFrame)> {
    let py = frame.py();
    let Ok(array) = frame.cast::<PyUntypedArray>() else {
        return Err(PyTypeError::new_err(format!(
            "frame: expected a numpy.ndarray of uint8 with shape (H, W, 3); got {}",
            type_name(frame)
        )));
    };
    let dtype = array.dtype();
    if !dtype.is_equiv_to(&numpy::dtype::<u8>(py)) {
        return Err(PyTypeError::new_err(format!(
            "frame: expected dtype uint8 (0-255 per channel); got {}: scale to 0-255 and convert \
             with frame.astype(numpy.uint8)",
            dtype
        )));
    }
    let shape = array.shape().to_vec();
    if shape.len() != 3 || shape[2] != 3 {
        let hint = match shape.as_slice() {
            [_, _] => "; a grey frame needs three channels: numpy.dstack([frame] * 3)",
            [_, _, 4] => {
                "; a four-channel frame (RGBA, BGRA, XRGB) needs its three colour channels: \
                 numpy.ascontiguousarray(frame[..., :3])"
            }
            _ => "",
        };
        return Err(PyValueError::new_err(format!(
            "frame: expected shape (H, W, 3); got {shape:?}{hint}"
        )));
    }
    let (h, w) = (shape[0], shape[1]);
    if h == 0 || w == 0 {
        return Err(PyValueError::new_err(format!(
            "frame: shape {shape:?} has no pixels"
        )));
    }
    let (Ok(width), Ok(height)) = (u32::try_from(w), u32::try_from(h)) else {
        return Err(PyValueError::new_err(format!(
            "frame: shape {shape:?} is too large (at most {} pixels a side)",
            u32::MAX
        )));
    };
    // numpy strides are in bytes (one per element here). Axes of length 1 may carry any stride.
    let strides = array.strides().to_vec();
    let row_len = 3 * w;
    let row_stride = if h == 1 { row_len as isize } else { strides[0] };
    let packed = strides[2] == 1 && (w == 1 || strides[1] == 3) && row_stride >= row_len as isize;
    if !packed {
        return Err(PyValueError::new_err(format!(
            "frame: the pixels must lie packed, rows top to bottom (strides (row, 3, 1)); got \
             strides {strides:?}: pass numpy.ascontiguousarray(frame) (for a BGR frame, pass \
             channel_order=\"BGR\" instead of reversing the channels with frame[..., ::-1])"
        )));
    }
    let row_stride = row_stride as usize;
    let typed = frame.cast::<PyArray3<u8>>()?;
    let guard = typed
        .try_readonly()
        .map_err(|e| PyValueError::new_err(format!("frame: {e}")))?;
    // Cannot overflow: numpy holds (h - 1) × row_stride + row_len bytes in memory already.
    let len = (h - 1) * row_stride + row_len;
    let raw = RawFrame {
        ptr: typed.data() as usize,
        len,
        width,
        height,
        row_stride,
    };
    Ok((guard, raw))
}

pub fn parse_order(order: &str) -> PyResult<ChannelOrder> {
    order
        .parse()
        .map_err(|e: String| PyValueError::new_err(format!("channel_order: {e}")))
}

/// A class map as a new H×W uint8 array that takes over `classes`' buffer (no copy).
pub fn classes_to_py(py: Python<'_>, classes: GrayImage) -> PyResult<Py<PyArray2<u8>>> {
    let (w, h) = classes.dimensions();
    let array = Array2::from_shape_vec((h as usize, w as usize), classes.into_raw())
        .map_err(|e| PyValueError::new_err(format!("class map: {e}")))?;
    Ok(PyArray2::from_owned_array(py, array).unbind())
}

/// `frame` blended half-and-half with each pixel's class colour (`colors[id]`, as (R, G, B));
/// pixels whose id has no colour (255, unseen) keep the frame's. The picture comes back in the
/// frame's channel order.
#[pyfunction]
#[pyo3(signature = (frame, classes, colors, channel_order = "RGB"))]
pub fn overlay<'py>(
    py: Python<'py>,
    frame: &Bound<'py, PyAny>,
    classes: &Bound<'py, PyAny>,
    colors: Vec<(u8, u8, u8)>,
    channel_order: &str,
) -> PyResult<Bound<'py, PyArray3<u8>>> {
    let order = parse_order(channel_order)?;
    let (_frame_guard, raw) = borrow_frame(frame)?;
    let Ok(classes) = classes.cast::<PyArray2<u8>>() else {
        return Err(PyTypeError::new_err(format!(
            "classes: expected an H×W numpy.ndarray of uint8 (a result's .classes); got {}",
            type_name(classes)
        )));
    };
    let ids = classes
        .try_readonly()
        .map_err(|e| PyValueError::new_err(format!("classes: {e}")))?;
    if ids.shape() != [raw.height as usize, raw.width as usize] {
        return Err(PyValueError::new_err(format!(
            "classes: shape {:?} does not match the frame's {}×{} (H×W)",
            ids.shape(),
            raw.height,
            raw.width
        )));
    }
    let colors: Vec<[u8; 3]> = colors.into_iter().map(|(r, g, b)| [r, g, b]).collect();
    let ids_packed;
    let ids: &[u8] = match ids.as_slice() {
        Ok(s) => s,
        Err(_) => {
            ids_packed = ids.as_array().iter().copied().collect::<Vec<u8>>();
            &ids_packed
        }
    };
    let mut out = RgbImage::new(0, 0);
    // SAFETY: `_frame_guard` keeps the frame borrowed until the end of this function.
    let view = unsafe { raw.view(order) }.py_err()?;
    gss::sink::blend_view_into(view, ids, &colors, &mut out).py_err()?;
    let (w, h) = out.dimensions();
    let array = Array3::from_shape_vec((h as usize, w as usize, 3), out.into_raw())
        .map_err(|e| PyValueError::new_err(format!("overlay: {e}")))?;
    Ok(PyArray3::from_owned_array(py, array))
}
