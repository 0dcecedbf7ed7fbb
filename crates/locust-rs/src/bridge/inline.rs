//! The engine on the Python thread (`LOCUST_RS_ENGINE=inline`, Linux): tokio's current-thread
//! runtime, run by the gevent hub whenever it would otherwise wait (`drive`), and woken through
//! the hub's own poll, which watches the runtime's epoll fd beside gevent's sockets.
//!
//! Why: with the engine on a thread of its own, every batch of work crosses between two threads
//! twice, and each crossing wakes a sleeping thread (a syscall, a context switch, cold caches).
//! With few users per process or an arrival rate, most batches hold one request, and those
//! wakeups cost more than the request. On one thread, a request's whole path is one wakeup.
//!
//! How the hub knows that tokio has work:
//! - I/O: the runtime's epoll fd is readable when one of its sockets is ready. tokio does not
//!   hand it out, so it is found as the one epoll fd the runtime's construction opened.
//! - Work it queued for itself: a round of `drive` ends once the runtime is about to park, with
//!   nothing left to run (`on_thread_park`). tokio then polls its driver once without waiting
//!   (tokio-rs/tokio#8212), and what that last poll wakes would wait unseen, its socket's edge
//!   spent: so rounds go on until one runs nothing and wakes nothing (`Counted`).
//! - Timers: tokio does not say when its next timer is due, so the hub drives it at least every
//!   millisecond while a greenlet waits on the engine (`locust_rs._gevent.bridge`). A timeout
//!   can fire up to that much late; response times do not depend on it.
//! - A job finished on another thread (a reply sent by another thread, a blocking DNS lookup):
//!   the completion queue's wakeup, as with the threaded engine.

use std::cell::{Cell, RefCell};
use std::collections::HashSet;
use std::future::Future;
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::task::{Context, Poll, Wake, Waker};

use crate::bridge::intake::Intake;

thread_local! {
    /// The waiting `drive`'s waker, woken when the runtime would park.
    static IDLE_WAKER: RefCell<Option<Waker>> = const { RefCell::new(None) };
    static IDLE: Cell<bool> = const { Cell::new(false) };
    /// True while this thread runs the inline runtime: a completion pushed meanwhile needs no
    /// wakeup, since `drive`'s caller hands out completions as soon as it returns.
    static DRIVING: Cell<bool> = const { Cell::new(false) };
    /// Polls of `Counted` tasks on this thread: `drive` tells from it whether a round ran anything.
    static POLLS: Cell<u64> = const { Cell::new(0) };
    /// Set when a `Counted` task is woken on this thread: `drive` tells from it whether the last
    /// look at the sockets of a round woke anything, which would wait in the run queue unseen.
    static WOKEN: Cell<bool> = const { Cell::new(false) };
}

/// Whether this process runs the inline engine: only then do `Counted` tasks note their wakeups.
static ACTIVE: AtomicBool = AtomicBool::new(false);

/// At most this many rounds per `drive`, so that a steady stream of I/O cannot keep the hub from
/// handing out what finished; `drive` then says there is more.
const MAX_ROUNDS: usize = 8;

fn polls() -> u64 {
    POLLS.with(Cell::get)
}

/// A task whose polls and wakeups `drive` counts. Every task the engine spawns is one (`spawn`),
/// so that a task woken by the runtime's last look at its sockets is not left waiting.
pub struct Counted<F: ?Sized> {
    fut: Pin<Box<F>>,
    /// The task's own waker, and the one that notes a wakeup before it wakes the task.
    waker: Option<(Waker, Waker)>,
}

impl<F: ?Sized> Counted<F> {
    pub fn new(fut: Pin<Box<F>>) -> Self {
        Counted { fut, waker: None }
    }
}

/// Notes a wakeup on the waking thread (`WOKEN`), then wakes the task.
struct Noting(Waker);

impl Wake for Noting {
    fn wake(self: Arc<Self>) {
        self.wake_by_ref();
    }

    fn wake_by_ref(self: &Arc<Self>) {
        WOKEN.with(|w| w.set(true));
        self.0.wake_by_ref();
    }
}

impl<F: Future + ?Sized> Future for Counted<F> {
    type Output = F::Output;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<F::Output> {
        POLLS.with(|p| p.set(p.get().wrapping_add(1)));
        let this = self.get_mut();
        if !ACTIVE.load(Ordering::Relaxed) {
            return this.fut.as_mut().poll(cx);
        }
        // A task's waker seldom changes: the noting one is made once and kept.
        let noting = match &this.waker {
            Some((theirs, ours)) if theirs.will_wake(cx.waker()) => ours.clone(),
            _ => {
                let ours = Waker::from(Arc::new(Noting(cx.waker().clone())));
                this.waker = Some((cx.waker().clone(), ours.clone()));
                ours
            }
        };
        this.fut.as_mut().poll(&mut Context::from_waker(&noting))
    }
}

/// `tokio::spawn`, counted (see `Counted`).
pub fn spawn<F>(fut: F) -> tokio::task::JoinHandle<F::Output>
where
    F: Future + Send + 'static,
    F::Output: Send + 'static,
{
    tokio::spawn(Counted::new(Box::pin(fut)))
}

/// hyper's executor for the tasks it spawns itself (HTTP/2's streams and pings): counted, as
/// `spawn`'s are. With `hyper_util`'s `TokioExecutor` they were plain tokio tasks, whose wakeup by a
/// turn's last look went unseen.
#[derive(Clone, Copy, Default)]
pub struct Executor;

impl<F> hyper::rt::Executor<F> for Executor
where
    F: Future + Send + 'static,
    F::Output: Send + 'static,
{
    fn execute(&self, fut: F) {
        spawn(fut);
    }
}

/// Clears `DRIVING` however `drive` ends, a panic included.
struct Driving;

impl Driving {
    fn start() -> Self {
        DRIVING.with(|d| d.set(true));
        Driving
    }
}

impl Drop for Driving {
    fn drop(&mut self) {
        DRIVING.with(|d| d.set(false));
    }
}

/// A panic inside a turn happens on the Python thread, on a greenlet's stack. The default hook,
/// with `RUST_BACKTRACE` set, walks that stack for a backtrace past the greenlet's first frame,
/// into memory another greenlet owns, and can fault. So a panic inside a turn prints its message
/// and place only; any other goes to the hook that was there before.
pub fn install_panic_hook() {
    let previous = std::panic::take_hook();
    std::panic::set_hook(Box::new(move |info| {
        if driving() {
            eprintln!("locust-rs engine (inline): {info}");
        } else {
            previous(info);
        }
    }));
}

/// Whether the calling thread is inside `drive`.
pub fn driving() -> bool {
    DRIVING.with(Cell::get)
}

pub struct Inline {
    runtime: tokio::runtime::Runtime,
    epoll_fd: i32,
}

/// Ready once the runtime has run out of work (see the module's docs).
struct UntilIdle;

impl Future for UntilIdle {
    type Output = ();

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<()> {
        if IDLE.with(|i| i.replace(false)) {
            return Poll::Ready(());
        }
        IDLE_WAKER.with(|w| *w.borrow_mut() = Some(cx.waker().clone()));
        Poll::Pending
    }
}

fn on_park() {
    if let Some(waker) = IDLE_WAKER.with(|w| w.borrow_mut().take()) {
        IDLE.with(|i| i.set(true));
        waker.wake();
    }
}

/// The epoll fds this process holds now.
fn epoll_fds() -> HashSet<i32> {
    let Ok(dir) = std::fs::read_dir("/proc/self/fd") else {
        return HashSet::new();
    };
    dir.filter_map(|e| {
        let e = e.ok()?;
        let fd: i32 = e.file_name().to_str()?.parse().ok()?;
        let target = std::fs::read_link(e.path()).ok()?;
        (target.as_os_str() == "anon_inode:[eventpoll]").then_some(fd)
    })
    .collect()
}

/// What the epoll `fd` watches (its `tfd:` lines in /proc/self/fdinfo).
fn registrations(fd: i32) -> String {
    std::fs::read_to_string(format!("/proc/self/fdinfo/{fd}"))
        .unwrap_or_default()
        .lines()
        .filter(|l| l.starts_with("tfd:"))
        .collect::<Vec<_>>()
        .join("\n")
}

impl Inline {
    /// The runtime and its epoll fd; an error names why the inline engine cannot be had here.
    pub fn build() -> Result<Self, String> {
        if !cfg!(target_os = "linux") {
            return Err("the engine runs on the Python thread on Linux only".into());
        }
        let before = epoll_fds();
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .on_thread_park(on_park)
            .build()
            .map_err(|e| format!("cannot start the tokio runtime: {e}"))?;
        let mut new: Vec<i32> = epoll_fds().difference(&before).copied().collect();
        new.sort_unstable();
        // tokio keeps a duplicate of its epoll fd (mio's registry): the same epoll, as its
        // registrations show. Any other epoll opened meanwhile (another thread's) differs.
        let watched: HashSet<String> = new.iter().map(|fd| registrations(*fd)).collect();
        match (new.first(), watched.len()) {
            (Some(&fd), 1) => {
                ACTIVE.store(true, Ordering::Relaxed);
                Ok(Inline {
                    runtime,
                    epoll_fd: fd,
                })
            }
            _ => Err(format!(
                "cannot tell the runtime's epoll fd among the new epoll fds {new:?}"
            )),
        }
    }

    pub fn epoll_fd(&self) -> i32 {
        self.epoll_fd
    }

    /// Starts the queued jobs and runs the runtime until it has nothing left to run: what its
    /// sockets and timers made ready, and what that work queued in turn. Never waits. Returns
    /// true if it stopped with work left (`MAX_ROUNDS`).
    ///
    /// Each round ends with a look at the sockets, and what that look wakes runs in the next
    /// round; so rounds go on until one runs nothing.
    pub fn drive(&self, intake: &Intake) -> bool {
        let _driving = Driving::start();
        self.runtime.block_on(async {
            // Spawned inside the runtime, so each goes on its local queue without a wakeup.
            intake.flush_with(|job| tokio::spawn(Counted::new(job)).abort_handle());
            for _ in 0..MAX_ROUNDS {
                let before = polls();
                WOKEN.with(|w| w.set(false));
                UntilIdle.await;
                // Idle: nothing ran, and the round's last look at the sockets woke nothing.
                if polls() == before && !WOKEN.with(Cell::get) {
                    return false;
                }
            }
            true
        })
    }
}
