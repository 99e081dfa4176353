//! The library's [`gss::Error`] as Python exceptions, keeping its message (the whole chain of
//! causes): files that are not there → `FileNotFoundError`, a package that cannot be used →
//! `gss.ModelError`, a bad frame or option → `ValueError`, anything else → `gss.GssError`.

use pyo3::create_exception;
use pyo3::exceptions::{PyException, PyFileNotFoundError, PyValueError};
use pyo3::PyErr;

create_exception!(
    gss,
    GssError,
    PyException,
    "An error of the gss runtime; the message says what failed and what to do."
);
create_exception!(
    gss,
    ModelError,
    GssError,
    "A model package that cannot be used: a broken manifest, a corrupt or truncated graph file, an unknown variant."
);

pub fn to_py(err: gss::Error) -> PyErr {
    use gss::Error as E;
    let msg = err.chain();
    match &err {
        E::Io { source, .. } if source.kind() == std::io::ErrorKind::NotFound => {
            PyFileNotFoundError::new_err(msg)
        }
        // A folder or pattern of frames that is not there, too (`gss.stream`).
        E::MissingFile { .. } | E::NotFound { .. } | E::SourceOpen { .. } => {
            PyFileNotFoundError::new_err(msg)
        }
        E::ManifestParse { .. }
        | E::UnsupportedFormat { .. }
        | E::ManifestInvalid { .. }
        | E::SizeMismatch { .. }
        | E::HashMismatch { .. }
        | E::Graph { .. }
        | E::UnknownVariant { .. }
        | E::GraphMismatch { .. }
        | E::UnsupportedOp { .. } => ModelError::new_err(msg),
        E::BadFrame { .. } | E::InvalidOption { .. } | E::Usage { .. } => {
            PyValueError::new_err(msg)
        }
        _ => GssError::new_err(msg),
    }
}

/// `?` on a library result inside a `#[pymethods]` body.
pub trait IntoPy<T> {
    fn py_err(self) -> pyo3::PyResult<T>;
}

impl<T> IntoPy<T> for gss::Result<T> {
    fn py_err(self) -> pyo3::PyResult<T> {
        self.map_err(to_py)
    }
}
