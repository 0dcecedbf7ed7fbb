//! Jobs submitted from the Python thread and not yet handed to tokio.
//!
//! Spawning on the runtime from outside it wakes a parked worker: a syscall, and a worker that
//! runs one job and parks again. The hub hands out completions in batches, and each greenlet it
//! resumes submits its next request at once; so jobs queue here and go to tokio together when
//! the batch ends (`flush`): the first spawn wakes the worker, the rest find it awake. (Handing
//! the batch to one task that spawned the jobs on the tokio thread measured worse: 10–20 % fewer
//! requests per CPU-second, as a burst of local spawns overflows the worker's run queue.)

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;

use parking_lot::Mutex;
use tokio::task::AbortHandle;

pub type Job = Pin<Box<dyn Future<Output = ()> + Send>>;

/// A job's cancellation, shared by its ticket and whoever spawns it: cancelling before the spawn
/// means it is never spawned; after, its task is aborted.
#[derive(Default)]
pub struct Slot {
    cancelled: bool,
    abort: Option<AbortHandle>,
}

pub type SlotRef = Arc<Mutex<Slot>>;

/// Whether the ticket of `slot` was cancelled (its waiter gone).
pub fn is_cancelled(slot: &SlotRef) -> bool {
    slot.lock().cancelled
}

pub fn cancel(slot: &SlotRef) {
    let mut s = slot.lock();
    s.cancelled = true;
    if let Some(handle) = s.abort.take() {
        handle.abort();
    }
}

#[derive(Default)]
pub struct Intake {
    jobs: Mutex<Vec<(Job, SlotRef)>>,
}

impl Intake {
    pub fn push(&self, job: Job, slot: SlotRef) {
        self.jobs.lock().push((job, slot));
    }

    /// Spawns every queued job that was not cancelled meanwhile.
    pub fn flush(&self, runtime: &tokio::runtime::Runtime) {
        self.flush_with(|job| runtime.spawn(job).abort_handle());
    }

    /// Starts every queued job that was not cancelled meanwhile with `spawn`.
    pub fn flush_with(&self, mut spawn: impl FnMut(Job) -> AbortHandle) {
        let batch = {
            let mut jobs = self.jobs.lock();
            if jobs.is_empty() {
                return;
            }
            std::mem::take(&mut *jobs)
        };
        for (job, slot) in batch {
            let mut s = slot.lock();
            if s.cancelled {
                // Dropping the job drops its reply, which answers "request cancelled".
                drop(s);
                drop(job);
            } else {
                s.abort = Some(spawn(job));
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::{AtomicBool, Ordering};
    use std::time::Duration;

    fn runtime() -> tokio::runtime::Runtime {
        tokio::runtime::Builder::new_multi_thread()
            .worker_threads(1)
            .enable_all()
            .build()
            .unwrap_or_else(|e| unreachable!("runtime: {e}"))
    }

    /// A job that records that it ran, and a guard that records that it was dropped.
    fn job(ran: Arc<AtomicBool>, dropped: Arc<AtomicBool>) -> Job {
        struct Guard(Arc<AtomicBool>);
        impl Drop for Guard {
            fn drop(&mut self) {
                self.0.store(true, Ordering::SeqCst);
            }
        }
        let guard = Guard(dropped);
        Box::pin(async move {
            let _guard = guard;
            ran.store(true, Ordering::SeqCst);
            tokio::time::sleep(Duration::from_secs(3600)).await;
        })
    }

    fn wait_for(flag: &AtomicBool) -> bool {
        for _ in 0..200 {
            if flag.load(Ordering::SeqCst) {
                return true;
            }
            std::thread::sleep(Duration::from_millis(10));
        }
        false
    }

    /// A runtime, an empty intake, and one job queued in it with its ticket's slot and its flags.
    struct Case {
        rt: tokio::runtime::Runtime,
        intake: Intake,
        slot: SlotRef,
        ran: Arc<AtomicBool>,
        dropped: Arc<AtomicBool>,
    }

    fn queued() -> Case {
        let case = Case {
            rt: runtime(),
            intake: Intake::default(),
            slot: SlotRef::default(),
            ran: Arc::new(AtomicBool::new(false)),
            dropped: Arc::new(AtomicBool::new(false)),
        };
        let job = job(case.ran.clone(), case.dropped.clone());
        case.intake.push(job, case.slot.clone());
        case
    }

    #[test]
    fn nothing_runs_before_a_flush() {
        let c = queued();
        std::thread::sleep(Duration::from_millis(50));
        assert!(!c.ran.load(Ordering::SeqCst));
        c.intake.flush(&c.rt);
        assert!(wait_for(&c.ran));
    }

    #[test]
    fn cancelled_before_the_flush_is_dropped_unrun() {
        let c = queued();
        cancel(&c.slot);
        c.intake.flush(&c.rt);
        // Dropping the job is what makes its reply answer "request cancelled".
        assert!(wait_for(&c.dropped));
        assert!(!c.ran.load(Ordering::SeqCst));
    }

    #[test]
    fn cancelled_after_the_flush_is_aborted() {
        let c = queued();
        c.intake.flush(&c.rt);
        assert!(wait_for(&c.ran));
        assert!(!c.dropped.load(Ordering::SeqCst));
        cancel(&c.slot);
        assert!(wait_for(&c.dropped));
    }
}
