//! The gevent <-> tokio bridge, tokio side.
//!
//! A submit spawns a task and returns a `Ticket` at once. A finished task pushes its outcome
//! into `Completions` and wakes the hub (`notify`) only if no wakeup is already pending, so there
//! is one write per drain cycle however many requests finish. Nothing here takes the GIL: the
//! Python side (a gevent io watcher on the wakeup handle, in `locust_rs._bridge`) calls `drain`.

use std::future::Future;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};

use bytes::Bytes;
use parking_lot::Mutex;
use pyo3::prelude::*;
use pyo3::types::{PyBytes, PyList, PyTuple};
use tokio::task::AbortHandle;

use crate::errors::{Error, ErrorKind};
use crate::http::response::{NativeError, NativeResponse};
use crate::http::HttpOutcome;
use crate::notify::Notify;
use crate::runtime;

static NEXT_ID: AtomicU64 = AtomicU64::new(1);

/// What a finished job hands back to its waiting greenlet.
pub enum Outcome {
    Http(Result<HttpOutcome, Error>),
    /// One chunk of a streamed body; `None` at the end.
    Chunk(Result<Option<Bytes>, Error>),
    /// A WebSocket connection that completed its upgrade.
    WsConnect(Result<crate::ws::conn::WsConnection, Error>),
    /// A WebSocket wait (a message arrived, the connection closed) that finished.
    WsReady(Result<(), Error>),
}

struct Completion {
    id: u64,
    outcome: Outcome,
}

pub struct Completions {
    queue: Mutex<Vec<Completion>>,
    notified: AtomicBool,
    notify: Notify,
}

impl Completions {
    pub fn new() -> Result<Self, Error> {
        Ok(Completions {
            queue: Mutex::new(Vec::with_capacity(1024)),
            notified: AtomicBool::new(false),
            notify: Notify::new()?,
        })
    }

    pub fn notify(&self) -> &Notify {
        &self.notify
    }

    fn push(&self, c: Completion) {
        self.queue.lock().push(c);
        if !self.notified.swap(true, Ordering::AcqRel) {
            self.wake();
        }
    }

    fn wake(&self) {
        self.notify.wake();
    }

    /// Takes up to `max` completions. Reset the wakeup, clear the flag, then take the queue: in
    /// that order a push racing with us either lands in this batch or writes a fresh wakeup.
    fn take(&self, max: usize) -> Vec<Completion> {
        self.notify.reset();
        self.notified.store(false, Ordering::Release);
        let mut q = self.queue.lock();
        if q.len() <= max {
            // Hand over the full vector and leave a sized one, so pushes do not regrow it.
            let capacity = q.capacity().max(64);
            return std::mem::replace(&mut *q, Vec::with_capacity(capacity));
        }
        let rest = q.split_off(max);
        let batch = std::mem::replace(&mut *q, rest);
        drop(q);
        // Leave the remainder for the next loop iteration so timers are not starved.
        if !self.notified.swap(true, Ordering::AcqRel) {
            self.wake();
        }
        batch
    }
}

/// Guarantees exactly one completion per ticket: if the task is aborted or panics before it
/// replies, `Drop` replies for it, so a waiter can never hang on a lost task.
struct Reply {
    id: u64,
    completions: &'static Completions,
    sent: bool,
}

impl Reply {
    fn send(mut self, outcome: Outcome) {
        self.sent = true;
        self.completions.push(Completion {
            id: self.id,
            outcome,
        });
    }
}

impl Drop for Reply {
    fn drop(&mut self) {
        if !self.sent {
            let err = if std::thread::panicking() {
                Error::new(
                    ErrorKind::Internal,
                    "locust-rs engine panicked while serving this request",
                )
            } else {
                Error::new(ErrorKind::Closed, "request cancelled")
            };
            self.completions.push(Completion {
                id: self.id,
                outcome: Outcome::Http(Err(err)),
            });
        }
    }
}

/// A submitted job. Cancelling aborts the tokio task; its late completion, if any, finds no
/// waiter and is dropped by the Python side.
#[pyclass(module = "locust_rs._native", frozen, freelist = 256)]
pub struct Ticket {
    #[pyo3(get)]
    id: u64,
    abort: AbortHandle,
}

#[pymethods]
impl Ticket {
    fn cancel(&self) {
        self.abort.abort();
    }
}

/// Spawns `fut` on this process's runtime and returns its ticket without waiting.
pub fn submit<F>(fut: F) -> Result<Ticket, Error>
where
    F: Future<Output = Outcome> + Send + 'static,
{
    let process = runtime::get()?;
    let id = NEXT_ID.fetch_add(1, Ordering::Relaxed);
    let reply = Reply {
        id,
        completions: &process.completions,
        sent: false,
    };
    let handle = process.runtime.spawn(async move {
        let outcome = fut.await;
        reply.send(outcome);
    });
    Ok(Ticket {
        id,
        abort: handle.abort_handle(),
    })
}

/// Submits a task that panics, to prove a panic inside the engine reaches its waiter as a
/// `NativeError(kind="internal")` instead of aborting the process or hanging. For tests only: the
/// `test-hooks` feature, which release wheels do not enable.
#[cfg(feature = "test-hooks")]
#[pyfunction]
pub fn _submit_panicking_task() -> PyResult<Ticket> {
    submit(async {
        #[allow(clippy::panic)]
        if NEXT_ID.load(Ordering::Relaxed) > 0 {
            panic!("deliberate panic for the test suite");
        }
        Outcome::Chunk(Ok(None))
    })
    .map_err(crate::py_err)
}

/// The handle the Python watcher listens on (starting the runtime if needed): a file
/// descriptor, or a socket on Windows.
#[pyfunction]
pub fn wakeup_fd() -> PyResult<i64> {
    Ok(runtime::get()
        .map_err(crate::py_err)?
        .completions
        .notify()
        .handle())
}

/// Which wakeup this process uses: "eventfd", "pipe" or "socketpair".
#[pyfunction]
pub fn wakeup_backend() -> PyResult<&'static str> {
    Ok(runtime::get()
        .map_err(crate::py_err)?
        .completions
        .notify()
        .backend())
}

/// Drains up to `max` completions as a list of `(id, value)`, where value is a
/// `NativeResponse`, a `NativeError`, or for a body chunk `bytes` (`None` at the end).
#[pyfunction]
#[pyo3(signature = (max = 512))]
pub fn drain(py: Python<'_>, max: usize) -> PyResult<Bound<'_, PyList>> {
    let list = PyList::empty(py);
    if !runtime::is_started() {
        return Ok(list);
    }
    let process = runtime::get().map_err(crate::py_err)?;
    for c in process.completions.take(max) {
        let value: Bound<'_, PyAny> = match c.outcome {
            Outcome::Http(Ok(out)) => Bound::new(py, NativeResponse::from(out))?.into_any(),
            Outcome::Http(Err(e)) | Outcome::Chunk(Err(e)) => {
                Bound::new(py, NativeError::from(e))?.into_any()
            }
            Outcome::Chunk(Ok(Some(b))) => PyBytes::new(py, &b).into_any(),
            Outcome::Chunk(Ok(None)) => py.None().into_bound(py),
            Outcome::WsConnect(Ok(conn)) => Bound::new(py, conn)?.into_any(),
            Outcome::WsReady(Ok(())) => pyo3::types::PyBool::new(py, true).to_owned().into_any(),
            Outcome::WsConnect(Err(e)) | Outcome::WsReady(Err(e)) => {
                Bound::new(py, NativeError::from(e))?.into_any()
            }
        };
        list.append(PyTuple::new(
            py,
            [c.id.into_pyobject(py)?.into_any(), value],
        )?)?;
    }
    Ok(list)
}
