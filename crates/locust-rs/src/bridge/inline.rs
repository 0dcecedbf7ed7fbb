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
//! - Work it queued for itself: `drive` returns only once the runtime is about to park, with
//!   nothing left to run (`on_thread_park`). tokio then polls its driver once without waiting
//!   (tokio-rs/tokio#8212); a task that this last poll woke runs at the next drive.
//! - Timers: tokio does not say when its next timer is due, so the hub drives it at least every
//!   millisecond while a greenlet waits on the engine (`locust_rs._gevent.bridge`). A timeout
//!   can fire up to that much late; response times do not depend on it.
//! - A job finished on another thread (a reply sent by another thread, a blocking DNS lookup):
//!   the completion queue's wakeup, as with the threaded engine.

use std::cell::{Cell, RefCell};
use std::collections::HashSet;
use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll, Waker};

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
}

/// At most this many rounds per `drive`, so that a steady stream of I/O cannot keep the hub from
/// handing out what finished; `drive` then says there is more.
const MAX_ROUNDS: usize = 8;

fn polls() -> u64 {
    POLLS.with(Cell::get)
}

/// A task whose polls `drive` counts. Every task the engine spawns is one (`spawn`), so that a
/// task woken by the runtime's last look at its sockets is not left waiting.
pub struct Counted<F: ?Sized>(pub Pin<Box<F>>);

impl<F: Future + ?Sized> Future for Counted<F> {
    type Output = F::Output;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<F::Output> {
        POLLS.with(|p| p.set(p.get().wrapping_add(1)));
        self.get_mut().0.as_mut().poll(cx)
    }
}

/// `tokio::spawn`, counted (see `Counted`).
pub fn spawn<F>(fut: F) -> tokio::task::JoinHandle<F::Output>
where
    F: Future + Send + 'static,
    F::Output: Send + 'static,
{
    tokio::spawn(Counted(Box::pin(fut)))
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
            (Some(&fd), 1) => Ok(Inline {
                runtime,
                epoll_fd: fd,
            }),
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
        DRIVING.with(|d| d.set(true));
        let more = self.runtime.block_on(async {
            // Spawned inside the runtime, so each goes on its local queue without a wakeup.
            intake.flush_with(|job| tokio::spawn(Counted(job)).abort_handle());
            for _ in 0..MAX_ROUNDS {
                let before = polls();
                UntilIdle.await;
                if polls() == before {
                    return false;
                }
            }
            true
        });
        DRIVING.with(|d| d.set(false));
        more
    }
}
