//! The gevent <-> tokio bridge, tokio side.
//!
//! A submit queues a job (`intake`) and returns a `Ticket` at once; `flush` hands the queued jobs
//! to tokio. A finished task pushes its value into
//! the process's completion queue (`completion`), which wakes the hub. Nothing here takes the GIL
//! on the tokio side, and nothing here knows what a job does: HTTP and WebSocket jobs alike hand
//! back something that turns itself into a Python object when the hub `drain`s it.
//!
//! The mechanism's parts: `intake` (jobs queued on the Python thread), `runtime` (the process's tokio runtime and
//! queues, remade after a fork), `completion` (the queue of finished jobs) and `notify` (the handle the hub
//! watches).

pub mod completion;
pub mod inline;
pub mod intake;
mod notify;
pub mod runtime;

use std::future::Future;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};

use crate::errors::python::to_pyerr;
use crate::errors::{Error, ErrorKind};
use completion::{Completion, Completions, IntoPyValue};
pub use inline::spawn;
use intake::SlotRef;
use pyo3::prelude::*;
use pyo3::types::{PyList, PyTuple};
use runtime::Engine;

static NEXT_ID: AtomicU64 = AtomicU64::new(1);
/// Jobs submitted to the inline engine and not yet finished or dropped: its timers matter only
/// while there are any (see `drive`).
static IN_FLIGHT: AtomicUsize = AtomicUsize::new(0);

/// In a fork child: none of the parent's jobs run here.
pub fn forget_in_flight() {
    IN_FLIGHT.store(0, Ordering::Relaxed);
}

struct InFlight;

impl InFlight {
    fn new() -> Self {
        IN_FLIGHT.fetch_add(1, Ordering::Relaxed);
        InFlight
    }
}

impl Drop for InFlight {
    fn drop(&mut self) {
        // Never below 0: a job of the parent's dropped in a fork child was not counted there.
        let _ = IN_FLIGHT.fetch_update(Ordering::Relaxed, Ordering::Relaxed, |n| n.checked_sub(1));
    }
}

/// Guarantees exactly one completion per ticket: if the task is aborted or panics before it
/// replies, `Drop` replies for it, so a waiter can never hang on a lost task.
pub struct Reply {
    id: u64,
    completions: &'static Completions,
    sent: bool,
}

impl Reply {
    pub fn send(mut self, value: impl IntoPyValue) {
        self.sent = true;
        self.completions.push(Completion::new(self.id, value));
    }

    /// Drops the reply without answering: for a ticket that was cancelled, whose waiter is gone.
    pub fn forget(mut self) {
        self.sent = true;
    }
}

/// A ticket completed from outside tokio, by whoever holds its `Reply` (any thread): no task, so
/// nothing to spawn or abort; `cancelled` tells the holder that the waiter is gone.
pub fn external() -> PyResult<(Ticket, Reply, SlotRef)> {
    let process = runtime::get().map_err(to_pyerr)?;
    let id = NEXT_ID.fetch_add(1, Ordering::Relaxed);
    let slot = SlotRef::default();
    let reply = Reply {
        id,
        completions: &process.completions,
        sent: false,
    };
    Ok((
        Ticket {
            id,
            slot: slot.clone(),
        },
        reply,
        slot,
    ))
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
            self.completions.push(Completion::new(self.id, err));
        }
    }
}

/// A submitted job. Cancelling aborts its tokio task, or stops it from being spawned; its late
/// completion, if any, finds no waiter and is dropped by the Python side.
#[pyclass(module = "locust_rs._native", frozen, freelist = 256)]
pub struct Ticket {
    #[pyo3(get)]
    id: u64,
    slot: SlotRef,
}

#[pymethods]
impl Ticket {
    fn cancel(&self) {
        intake::cancel(&self.slot);
    }
}

/// Queues `fut` for this process's runtime and returns its ticket without waiting; the ticket
/// completes with what `fut` returns. The job starts at the next `flush`.
pub fn submit<F>(fut: F) -> PyResult<Ticket>
where
    F: Future + Send + 'static,
    F::Output: IntoPyValue,
{
    queue(fut, true)
}

/// `submit` for a job that only waits for an event another job or Python makes (no timeout of
/// its own): the inline engine need not turn every millisecond for it while it waits.
pub fn submit_untimed<F>(fut: F) -> PyResult<Ticket>
where
    F: Future + Send + 'static,
    F::Output: IntoPyValue,
{
    queue(fut, false)
}

fn queue<F>(fut: F, timed: bool) -> PyResult<Ticket>
where
    F: Future + Send + 'static,
    F::Output: IntoPyValue,
{
    let process = runtime::get().map_err(to_pyerr)?;
    let id = NEXT_ID.fetch_add(1, Ordering::Relaxed);
    let reply = Reply {
        id,
        completions: &process.completions,
        sent: false,
    };
    let slot = SlotRef::default();
    // Only the inline engine asks; on the threads the count would cost a shared cache line per job.
    let in_flight = (timed && matches!(process.engine, Engine::Inline(_))).then(InFlight::new);
    process.intake.push(
        Box::pin(async move {
            let _in_flight = in_flight;
            reply.send(fut.await);
        }),
        slot.clone(),
    );
    Ok(Ticket { id, slot })
}

/// Hands the jobs submitted since the last flush to tokio. The hub calls it when it is about to
/// wait: after a batch of completions, and before a greenlet parks outside one. With the inline
/// engine it also runs them as far as they go without waiting (`drive`); what finished is then
/// handed out through the wakeup, as from the threads.
#[pyfunction]
pub fn flush() {
    if runtime::is_started() {
        if let Ok(process) = runtime::get() {
            match &process.engine {
                Engine::Threaded(rt) => process.intake.flush(rt),
                Engine::Inline(inline) => {
                    inline.drive(&process.intake);
                    process.completions.wake_if_pending();
                }
            }
        }
    }
}

/// The inline engine's turn, when the hub is about to wait or the runtime's epoll fd is ready:
/// starts the queued jobs and runs the runtime until it has nothing left to run. Returns 1 if
/// completions wait (the caller drains them at once: none of them woke the hub), plus 2 if work
/// is left for another turn, plus 4 if jobs are still running (their timeouts need a turn now
/// and then: tokio does not say when its next timer is due). 0 with the threaded engine, whose
/// threads do this.
#[pyfunction]
pub fn drive() -> u8 {
    let Ok(process) = runtime::get() else {
        return 0;
    };
    let Engine::Inline(inline) = &process.engine else {
        return 0;
    };
    let more = inline.drive(&process.intake);
    u8::from(!process.completions.is_empty())
        | (u8::from(more) << 1)
        | (u8::from(IN_FLIGHT.load(Ordering::Relaxed) > 0) << 2)
}

/// Which engine this process runs ("thread" or "inline"), starting it if needed; and why the
/// inline engine, if asked for, could not be had.
#[pyfunction]
pub fn engine() -> PyResult<(&'static str, Option<String>)> {
    let process = runtime::get().map_err(to_pyerr)?;
    Ok((process.engine.name(), runtime::inline_refused()))
}

/// The inline engine's epoll fd, which the hub watches; None with the threaded engine.
#[pyfunction]
pub fn engine_fd() -> PyResult<Option<i64>> {
    Ok(match &runtime::get().map_err(to_pyerr)?.engine {
        Engine::Threaded(_) => None,
        Engine::Inline(inline) => Some(i64::from(inline.epoll_fd())),
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
        Error::new(ErrorKind::Internal, "not reached")
    })
}

/// The handle the Python watcher listens on (starting the runtime if needed): a file
/// descriptor, or a socket on Windows.
#[pyfunction]
pub fn wakeup_fd() -> PyResult<i64> {
    Ok(runtime::get()
        .map_err(to_pyerr)?
        .completions
        .notify()
        .handle())
}

/// Which wakeup this process uses: "eventfd", "pipe" or "socketpair".
#[pyfunction]
pub fn wakeup_backend() -> PyResult<&'static str> {
    Ok(runtime::get()
        .map_err(to_pyerr)?
        .completions
        .notify()
        .backend())
}

/// Drains up to `max` completions as a list of `(id, value)`, each value made by its job
/// (`IntoPyValue`).
#[pyfunction]
#[pyo3(signature = (max = 512))]
pub fn drain(py: Python<'_>, max: usize) -> PyResult<Bound<'_, PyList>> {
    let list = PyList::empty(py);
    if !runtime::is_started() {
        return Ok(list);
    }
    let process = runtime::get().map_err(to_pyerr)?;
    for c in process.completions.take(max) {
        let id = c.id.into_pyobject(py)?.into_any();
        list.append(PyTuple::new(py, [id, c.into_py(py)?])?)?;
    }
    Ok(list)
}
