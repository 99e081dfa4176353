//! `gss._gss`: the extension module behind the `gss` Python package (python/gss/__init__.py
//! re-exports it). Each concept has its module:
//!
//! - [`frame`]: a numpy array in, checked and read in place (no copy), a class map out;
//! - [`options`]: the constructor keywords every mode shares, turned into the library's options;
//! - [`image_mode`]: `Segmenter`, one frame per call on the caller's thread;
//! - [`live`]: `LiveSegmenter`, frames pushed from a camera callback into the library's
//!   `Pipeline`, results handed to a Python callback from gss's own thread;
//! - [`stream`]: `stream(...)`, files and folders through the `Pipeline` as a Python iterator;
//! - [`result`]: what every mode returns;
//! - [`errors`]: the library's errors as Python exceptions.
//!
//! The GIL is released wherever the model runs or a thread waits on the pipeline.

mod errors;
mod frame;
mod image_mode;
mod live;
mod options;
mod result;
mod stream;

use pyo3::prelude::*;

#[pymodule]
fn _gss(m: &Bound<'_, PyModule>) -> PyResult<()> {
    let py = m.py();
    m.add("GssError", py.get_type::<errors::GssError>())?;
    m.add("ModelError", py.get_type::<errors::ModelError>())?;
    m.add_class::<image_mode::Segmenter>()?;
    m.add_class::<live::LiveSegmenter>()?;
    m.add_class::<stream::Stream>()?;
    m.add_class::<result::SegmentResult>()?;
    m.add_class::<result::Timings>()?;
    m.add_class::<options::ClassInfo>()?;
    m.add_class::<options::ModelInfo>()?;
    m.add_function(wrap_pyfunction!(stream::stream, m)?)?;
    m.add_function(wrap_pyfunction!(frame::overlay, m)?)?;
    m.add_function(wrap_pyfunction!(configure, m)?)?;
    m.add_function(wrap_pyfunction!(live::_close_all, m)?)?;
    m.add_function(wrap_pyfunction!(options::classes, m)?)?;
    m.add("UNSEEN", gss::frame_path::UNSEEN)?;
    m.add("WGPU", cfg!(feature = "wgpu"))?;
    options::set_module_dir(m)?;
    Ok(())
}

/// Applies gss's process-wide settings (tract's kernel family as `gss tune` measured it, the
/// allocator's thresholds), as the `gss` command does first thing. The library never changes
/// process-wide state by itself: call this once at start-up, before any model is loaded, when
/// this process should run gss as fast as the command does. Returns what was applied.
#[pyfunction]
fn configure() -> String {
    let done = gss::process::configure();
    format!(
        "tract kernels: {:?}; allocator thresholds raised: {}",
        done.tract_isa, done.allocator
    )
}
