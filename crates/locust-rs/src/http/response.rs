//! The Python view of a finished request. Nothing is converted until Python reads it: the body
//! stays `Bytes` and the headers a `HeaderMap` until `.content` or `.headers()` is asked for.

use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use http::{HeaderMap, Version};
use http_body_util::BodyExt;
use hyper::body::Incoming;
use parking_lot::Mutex;
use pyo3::prelude::*;
use pyo3::types::{PyBytes, PyList, PyString, PyTuple};
use tokio::sync::OwnedSemaphorePermit;

use super::pool::{Origin, PoolInner, Sender};
use super::{Hop, HttpOutcome};
use crate::bridge::completion::IntoPyValue;
use crate::bridge::{self, Ticket};
use crate::errors::python::NativeError;
use crate::errors::Error;
use crate::time::with_timeout;

/// The unread rest of a streamed body. Returning the connection to the pool, and the
/// concurrency slot, happens only once the body has been read to its end.
pub struct BodyStream {
    state: Arc<tokio::sync::Mutex<StreamState>>,
}

struct StreamState {
    body: Option<Incoming>,
    sender: Option<Sender>,
    origin: Origin,
    pool: Arc<PoolInner>,
    permit: Option<OwnedSemaphorePermit>,
    timeout: Option<Duration>,
}

impl BodyStream {
    pub fn new(
        body: Incoming,
        sender: Sender,
        origin: Origin,
        pool: Arc<PoolInner>,
        permit: OwnedSemaphorePermit,
        timeout: Option<Duration>,
    ) -> Self {
        let state = StreamState {
            body: Some(body),
            sender: Some(sender),
            origin,
            pool,
            permit: Some(permit),
            timeout,
        };
        BodyStream {
            state: Arc::new(tokio::sync::Mutex::new(state)),
        }
    }
}

async fn next_chunk(state: Arc<tokio::sync::Mutex<StreamState>>) -> Result<Option<Bytes>, Error> {
    let mut st = state.lock().await;
    loop {
        let timeout = st.timeout;
        let Some(body) = st.body.as_mut() else {
            return Ok(None);
        };
        let frame = match with_timeout(timeout, body.frame()).await {
            Err(()) => Err(Error::timeout()),
            Ok(None) => Ok(None),
            Ok(Some(Err(e))) => Err(Error::from_hyper(&e)),
            Ok(Some(Ok(f))) => match f.into_data() {
                Ok(d) if d.is_empty() => continue,
                Ok(d) => return Ok(Some(d)),
                Err(_) => continue,
            },
        };
        st.body = None;
        st.permit = None;
        if let (Ok(None), Some(sender)) = (&frame, st.sender.take()) {
            st.pool.checkin(&st.origin, sender);
        }
        st.sender = None;
        return frame;
    }
}

#[pyclass(module = "locust_rs._native", frozen, freelist = 256)]
pub struct NativeResponse {
    #[pyo3(get)]
    status_code: u16,
    reason: Option<Bytes>,
    version: Version,
    headers: HeaderMap,
    body: Mutex<Body>,
    body_len: usize,
    #[pyo3(get)]
    url: String,
    history: Vec<Hop>,
    #[pyo3(get)]
    response_time: f64,
    body_error: Option<Error>,
    stream: Option<BodyStream>,
}

/// The body, in Rust until Python first reads it, then only in Python: one copy, whose lifetime
/// is the Python object's (a 100 MB response must not cost 200 MB).
enum Body {
    Rust(Bytes),
    Python(Py<PyBytes>),
}

impl From<HttpOutcome> for NativeResponse {
    fn from(o: HttpOutcome) -> Self {
        NativeResponse {
            status_code: o.status,
            reason: o.reason,
            version: o.version,
            headers: o.headers,
            body_len: o.body.len(),
            body: Mutex::new(Body::Rust(o.body)),
            url: o.url,
            history: o.history,
            response_time: o.response_time,
            body_error: o.body_error,
            stream: o.stream,
        }
    }
}

impl IntoPyValue for HttpOutcome {
    fn into_py_value(self, py: Python<'_>) -> PyResult<Bound<'_, PyAny>> {
        Ok(Bound::new(py, NativeResponse::from(self))?.into_any())
    }
}

/// One chunk of a streamed body, or `None` at its end: `bytes` or `None` in Python.
pub struct Chunk(Option<Bytes>);

impl IntoPyValue for Chunk {
    fn into_py_value(self, py: Python<'_>) -> PyResult<Bound<'_, PyAny>> {
        Ok(match self.0 {
            Some(b) => PyBytes::new(py, &b).into_any(),
            None => py.None().into_bound(py),
        })
    }
}

fn headers_list<'py>(py: Python<'py>, headers: &HeaderMap) -> PyResult<Bound<'py, PyList>> {
    let list = PyList::empty(py);
    for (k, v) in headers {
        let value = String::from_utf8_lossy(v.as_bytes());
        list.append(PyTuple::new(
            py,
            [PyString::new(py, k.as_str()), PyString::new(py, &value)],
        )?)?;
    }
    Ok(list)
}

#[pymethods]
impl NativeResponse {
    /// The decoded body (what arrived so far, if `body_error` is set).
    #[getter]
    fn content<'py>(&self, py: Python<'py>) -> Bound<'py, PyBytes> {
        let mut body = self.body.lock();
        match &*body {
            Body::Python(b) => b.bind(py).clone(),
            Body::Rust(raw) => {
                let b = PyBytes::new(py, raw);
                *body = Body::Python(b.clone().unbind());
                b
            }
        }
    }

    /// Length of the decoded body, without copying it into Python.
    #[getter]
    fn content_length(&self) -> usize {
        self.body_len
    }

    #[getter]
    fn http_version(&self) -> &'static str {
        match self.version {
            Version::HTTP_09 => "HTTP/0.9",
            Version::HTTP_10 => "HTTP/1.0",
            Version::HTTP_2 => "HTTP/2",
            Version::HTTP_3 => "HTTP/3",
            _ => "HTTP/1.1",
        }
    }

    #[getter]
    fn body_error(&self) -> Option<NativeError> {
        self.body_error.clone().map(NativeError::from)
    }

    /// True when at least one redirect was followed.
    #[getter]
    fn redirected(&self) -> bool {
        !self.history.is_empty()
    }

    #[getter]
    fn is_stream(&self) -> bool {
        self.stream.is_some()
    }

    /// All headers in arrival order as (lowercase name, value) pairs.
    fn headers<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyList>> {
        headers_list(py, &self.headers)
    }

    /// The first value of one header, or None; cheaper than building all of them.
    fn header(&self, name: &str) -> Option<String> {
        self.headers
            .get(name)
            .map(|v| String::from_utf8_lossy(v.as_bytes()).into_owned())
    }

    /// The reason phrase: the one the server sent, else the standard one of the status (None
    /// for a status that has none, or over HTTP/2, which has no reason phrases).
    #[getter]
    fn reason(&self) -> Option<String> {
        if self.version == Version::HTTP_2 && self.reason.is_none() {
            return None;
        }
        super::reason_phrase(self.status_code, self.reason.as_ref())
    }

    /// The redirects followed, oldest first, as (status, url, headers, reason, body) tuples.
    fn history<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyList>> {
        let list = PyList::empty(py);
        for hop in &self.history {
            let t = PyTuple::new(
                py,
                [
                    hop.status.into_pyobject(py)?.into_any(),
                    PyString::new(py, &hop.url).into_any(),
                    headers_list(py, &hop.headers)?.into_any(),
                    super::reason_phrase(hop.status, hop.reason.as_ref())
                        .into_pyobject(py)?
                        .into_any(),
                    PyBytes::new(py, &hop.body).into_any(),
                ],
            )?;
            list.append(t)?;
        }
        Ok(list)
    }

    /// Submits a read of the next chunk of a streamed body; the ticket completes with bytes,
    /// or None at the end.
    fn read_chunk(&self) -> PyResult<Ticket> {
        let state = match &self.stream {
            Some(s) => s.state.clone(),
            None => {
                return Err(pyo3::exceptions::PyRuntimeError::new_err(
                    "response is not streamed",
                ))
            }
        };
        bridge::submit(async move { next_chunk(state).await.map(Chunk) })
    }
}
