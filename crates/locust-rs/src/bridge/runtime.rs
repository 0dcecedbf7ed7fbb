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
use crate::bridge::inline::Inline;
use crate::bridge::intake::Intake;
use crate::errors::{Error, ErrorKind};

static CURRENT: AtomicPtr<Process> = AtomicPtr::new(std::ptr::null_mut());
static INIT: Mutex<()> = Mutex::new(());
static WORKER_THREADS: AtomicUsize = AtomicUsize::new(0);
static PID: AtomicU32 = AtomicU32::new(0);

pub struct Process {
    pub pid: u32,
    pub engine: Engine,
    pub completions: Completions,
    pub intake: Intake,
}

/// Where the engine's tasks run: tokio's threads, or the Python thread (`bridge::inline`).
pub enum Engine {
    Threaded(tokio::runtime::Runtime),
    Inline(Inline),
}

impl Engine {
    pub fn name(&self) -> &'static str {
        match self {
            Engine::Threaded(_) => "thread",
            Engine::Inline(_) => "inline",
        }
    }
}

/// Why the inline engine was asked for and not had, if it was.
static INLINE_REFUSED: Mutex<Option<String>> = Mutex::new(None);

pub fn inline_refused() -> Option<String> {
    INLINE_REFUSED
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .clone()
}

/// The engine for this process: on threads of its own by default; on the Python thread with
/// `LOCUST_RS_ENGINE=inline` where it can be (Linux, one worker thread). The inline engine is not
/// the default yet: see docs/architecture.md ("Threads") for what it gains and what still fails.
fn build_engine() -> Result<Engine, Error> {
    let wanted = std::env::var("LOCUST_RS_ENGINE").unwrap_or_default();
    let refused = match wanted.trim() {
        "" | "thread" => None,
        "inline" if worker_threads() > 1 => {
            Some("LOCUST_RS_WORKER_THREADS is more than 1".to_string())
        }
        "inline" => match Inline::build() {
            Ok(inline) => return Ok(Engine::Inline(inline)),
            Err(why) => Some(why),
        },
        other => Some(format!(
            "LOCUST_RS_ENGINE is {other:?}, not \"inline\" or \"thread\""
        )),
    };
    *INLINE_REFUSED.lock().unwrap_or_else(|e| e.into_inner()) = refused;
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(worker_threads())
        .thread_name("locust-rs-tokio")
        .enable_all()
        .build()
        .map(Engine::Threaded)
        .map_err(|e| {
            Error::new(
                ErrorKind::Internal,
                format!("cannot start the tokio runtime: {e}"),
            )
        })
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
    // Only atomic stores here: the child may not take locks the parent's threads held. The
    // parent's jobs are not the child's.
    PID.store(pid(), Ordering::Relaxed);
    crate::bridge::forget_in_flight();
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
    let engine = build_engine()?;
    let completions = Completions::new().map_err(|e| {
        Error::new(
            ErrorKind::Internal,
            format!("cannot open the wakeup handle: {e}"),
        )
    })?;
    let fresh: &'static Process = Box::leak(Box::new(Process {
        pid: me,
        engine,
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
