//! One tokio runtime per process, built lazily on first use.
//!
//! `locust --processes N` imports the locustfile and then forks. Tokio's threads do not survive a
//! fork, and a child that touched the parent's runtime, queue or locks could deadlock on a lock
//! held by a thread that no longer exists. So everything per-process lives in one `Process`
//! value tagged with its pid: a child that finds a stale pid builds a fresh one and leaks the
//! parent's copy (dropping it would try to join threads that are gone).

use std::sync::atomic::{AtomicPtr, AtomicU32, AtomicUsize, Ordering};
use std::sync::Mutex;

use crate::bridge::completion::Completions;
use crate::bridge::intake::Intake;
use crate::errors::{Error, ErrorKind};

static CURRENT: AtomicPtr<Process> = AtomicPtr::new(std::ptr::null_mut());
static INIT: Mutex<()> = Mutex::new(());
static WORKER_THREADS: AtomicUsize = AtomicUsize::new(0);
static PID: AtomicU32 = AtomicU32::new(0);

pub struct Process {
    pub pid: u32,
    pub runtime: tokio::runtime::Runtime,
    pub completions: Completions,
    pub intake: Intake,
}

fn pid() -> u32 {
    std::process::id()
}

/// The worker-thread count for runtimes built from now on: `configure()`, else the
/// `LOCUST_RS_WORKER_THREADS` environment variable, else 1.
pub fn worker_threads() -> usize {
    match WORKER_THREADS.load(Ordering::Relaxed) {
        0 => std::env::var("LOCUST_RS_WORKER_THREADS")
            .ok()
            .and_then(|v| v.trim().parse::<usize>().ok())
            .filter(|n| *n > 0)
            .unwrap_or(1),
        n => n,
    }
}

pub fn set_worker_threads(n: usize) {
    WORKER_THREADS.store(n, Ordering::Relaxed);
}

#[cfg(unix)]
extern "C" fn after_fork_in_child() {
    // Only an atomic store here: the child may not take locks the parent's threads held.
    PID.store(pid(), Ordering::Relaxed);
}

/// Records this process's pid and, where processes fork, registers the hook that records a
/// child's; called at module import. Windows has no fork.
pub fn install_fork_hook() {
    PID.store(pid(), Ordering::Relaxed);
    #[cfg(unix)]
    // SAFETY: the handler only performs an atomic store and a getpid syscall.
    unsafe {
        libc::pthread_atfork(None, None, Some(after_fork_in_child));
    }
}

/// This process's pid as recorded at import and after each fork: an atomic load instead of a
/// getpid syscall on the per-request path.
pub fn current_pid() -> u32 {
    PID.load(Ordering::Relaxed)
}

/// True when a process state exists and belongs to this process.
pub fn is_started() -> bool {
    let p = CURRENT.load(Ordering::Acquire);
    // SAFETY: a published Process is never freed (see module docs).
    !p.is_null() && unsafe { (*p).pid } == PID.load(Ordering::Relaxed)
}

/// This process's state, building it on first use and after a fork.
pub fn get() -> Result<&'static Process, Error> {
    let p = CURRENT.load(Ordering::Acquire);
    let me = PID.load(Ordering::Relaxed);
    // SAFETY: a published Process is leaked, so the reference lives for the whole program.
    if !p.is_null() && unsafe { (*p).pid } == me {
        return Ok(unsafe { &*p });
    }
    build(me)
}

#[cold]
fn build(me: u32) -> Result<&'static Process, Error> {
    let _guard = INIT.lock().unwrap_or_else(|e| e.into_inner());
    let p = CURRENT.load(Ordering::Acquire);
    if !p.is_null() && unsafe { (*p).pid } == me {
        return Ok(unsafe { &*p });
    }
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(worker_threads())
        .thread_name("locust-rs-tokio")
        .enable_all()
        .build()
        .map_err(|e| {
            Error::new(
                ErrorKind::Internal,
                format!("cannot start the tokio runtime: {e}"),
            )
        })?;
    let completions = Completions::new().map_err(|e| {
        Error::new(
            ErrorKind::Internal,
            format!("cannot open the wakeup handle: {e}"),
        )
    })?;
    let fresh: &'static Process = Box::leak(Box::new(Process {
        pid: me,
        runtime,
        completions,
        intake: Intake::default(),
    }));
    CURRENT.store(fresh as *const Process as *mut Process, Ordering::Release);
    Ok(fresh)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn get_returns_the_same_process_twice() {
        install_fork_hook();
        let a = get().map(|p| p as *const Process).ok();
        let b = get().map(|p| p as *const Process).ok();
        assert!(a.is_some());
        assert_eq!(a, b);
        assert!(is_started());
    }
}
