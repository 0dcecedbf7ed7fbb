//! The one boundary where engine errors become Python objects:
//! - a request that failed reaches its waiter as a `NativeError`, which `locust_rs._errors` turns
//!   into the exception a Locust user expects from Locust's own clients;
//! - a call that fails before anything is submitted raises at once (`to_pyerr`): `ValueError`
//!   for a bad argument, `OSError` for the operating system's refusals, `RuntimeError` for the
//!   engine's own failures.

use pyo3::exceptions::{PyOSError, PyRuntimeError, PyValueError};
use pyo3::prelude::*;

use super::{Error, ErrorKind};
use crate::bridge::completion::IntoPyValue;

/// A transport error as Python sees it; `locust_rs._errors` maps it to an exception class.
#[pyclass(module = "locust_rs._native", frozen)]
pub struct NativeError {
    #[pyo3(get)]
    kind: &'static str,
    #[pyo3(get)]
    message: String,
    #[pyo3(get)]
    errno: Option<i32>,
    /// (method, url) of the request that failed, if not the one submitted (after redirects).
    #[pyo3(get)]
    request: Option<(String, String)>,
}

impl From<Error> for NativeError {
    fn from(e: Error) -> Self {
        NativeError {
            kind: e.kind.as_str(),
            message: e.message,
            errno: e.errno,
            request: e.request.map(|r| *r),
        }
    }
}

#[pymethods]
impl NativeError {
    fn __repr__(&self) -> String {
        format!(
            "NativeError(kind={:?}, message={:?}, errno={:?})",
            self.kind, self.message, self.errno
        )
    }
}

impl IntoPyValue for Error {
    fn into_py_value(self, py: Python<'_>) -> PyResult<Bound<'_, PyAny>> {
        Ok(Bound::new(py, NativeError::from(self))?.into_any())
    }
}

/// A job's result: its value, or the error that ended it.
impl<T: IntoPyValue> IntoPyValue for Result<T, Error> {
    fn into_py_value(self, py: Python<'_>) -> PyResult<Bound<'_, PyAny>> {
        match self {
            Ok(v) => v.into_py_value(py),
            Err(e) => e.into_py_value(py),
        }
    }
}

/// The exception a call raises when it fails before submitting anything.
pub fn to_pyerr(e: Error) -> PyErr {
    match e.kind {
        ErrorKind::InvalidUrl
        | ErrorKind::UnsupportedScheme
        | ErrorKind::InvalidProxy
        | ErrorKind::InvalidArgument => PyValueError::new_err(e.message),
        _ => match e.errno {
            Some(errno) => PyOSError::new_err((errno, e.message)),
            None => PyRuntimeError::new_err(e.to_string()),
        },
    }
}

/// The Python name of every error kind, for the test that each facade maps them all.
pub fn kind_names() -> Vec<&'static str> {
    ErrorKind::ALL.iter().map(|k| k.as_str()).collect()
}
