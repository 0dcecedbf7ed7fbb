//! The completion queue between tokio and the gevent hub. A finished job pushes its value here and
//! wakes the hub (`notify`) only if no wakeup is pending, so a burst of completions costs one
//! write. The queue never looks at what a job carries: anything that can turn itself into a
//! Python object once the hub drains it (`IntoPyValue`) will do. Nothing here takes the GIL.

use std::io;
use std::sync::atomic::{AtomicBool, Ordering};

use parking_lot::Mutex;
use pyo3::prelude::*;

use crate::bridge::notify::Notify;

/// What a finished job hands to its waiting greenlet: converted into a Python object only when
/// the hub drains it, with the GIL held (a `NativeResponse`, bytes, a `NativeError`, ...).
pub trait IntoPyValue: Send + 'static {
    fn into_py_value(self, py: Python<'_>) -> PyResult<Bound<'_, PyAny>>;
}

/// The object-safe face of `IntoPyValue`, so one queue holds every kind of job.
trait Deliver: Send {
    fn deliver(self: Box<Self>, py: Python<'_>) -> PyResult<Bound<'_, PyAny>>;
}

impl<T: IntoPyValue> Deliver for T {
    fn deliver(self: Box<Self>, py: Python<'_>) -> PyResult<Bound<'_, PyAny>> {
        (*self).into_py_value(py)
    }
}

/// One finished job: its ticket id and its value.
pub struct Completion {
    pub id: u64,
    value: Box<dyn Deliver>,
}

impl Completion {
    pub fn new(id: u64, value: impl IntoPyValue) -> Self {
        Completion {
            id,
            value: Box::new(value),
        }
    }

    pub fn into_py(self, py: Python<'_>) -> PyResult<Bound<'_, PyAny>> {
        self.value.deliver(py)
    }
}

pub struct Completions {
    queue: Mutex<Vec<Completion>>,
    notified: AtomicBool,
    notify: Notify,
}

impl Completions {
    pub fn new() -> io::Result<Self> {
        Ok(Completions {
            queue: Mutex::new(Vec::with_capacity(1024)),
            notified: AtomicBool::new(false),
            notify: Notify::new()?,
        })
    }

    pub fn notify(&self) -> &Notify {
        &self.notify
    }

    pub fn push(&self, c: Completion) {
        self.queue.lock().push(c);
        // On the Python thread, inside the inline engine's `drive`, the hub drains right after:
        // no wakeup (see `bridge::drive`).
        if !self.notified.swap(true, Ordering::AcqRel) && !crate::bridge::inline::driving() {
            self.notify.wake();
        }
    }

    pub fn is_empty(&self) -> bool {
        self.queue.lock().is_empty()
    }

    /// Makes the wakeup readable if anything waits: after a `drive` whose caller will not drain.
    pub fn wake_if_pending(&self) {
        if !self.is_empty() {
            self.notified.store(true, Ordering::Release);
            self.notify.wake();
        }
    }

    /// Takes up to `max` completions. Reset the wakeup, clear the flag, then take the queue: in
    /// that order a push racing with us either lands in this batch or writes a fresh wakeup.
    pub fn take(&self, max: usize) -> Vec<Completion> {
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
            self.notify.wake();
        }
        batch
    }
}
